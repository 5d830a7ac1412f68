// Ava blocks Leo from one of her two sockets while both have the chat open
// on one device; Leo's client goes on as the seed's does (sends without and
// with an ack, an edit of a message from before the block, typing, status
// changes, a reconnect); then Ava unblocks.
// Usage: node market_block.mjs URL CONFIG_JSON
import {
  about, call, cfg, chatOnTwoDevicesEach, eachGot, finish, fire, out, received, rest, roundTrip,
  seedMessage, until,
} from "./seed_client.mjs";

const cid = cfg.conversationId;
const { ava1, ava2, leo1, leo2, all } = await chatOnTwoDevicesEach(cid);
const avas = [ava1, ava2];
const here = about(cid);
const message = (text) => seedMessage(cid, cfg.leo, cfg.ava, text);
const typing = { conversationId: cid, userId: cfg.leo };
// What Ava's sockets have of Leo: typing, presence, messages.
const leaks = (socket) => socket.recording.events.filter(([event, d]) =>
  (event === "user_typing" && d.userId === cfg.leo) ||
  (event === "typing_status_update" && d.user_id === cfg.leo) ||
  (event === "user_status_update" && d.user_id === cfg.leo) ||
  (["new_message", "message_updated"].includes(event) && d.message.sender_id === cfg.leo)).length;

// Before the block Leo's typing shows on Ava's open chat and chat lists.
leo1.emit("typing_start", typing);
await until("Leo typing on Ava's chat", () => received(ava1, "user_typing", here).length >= 1);
await eachGot("Leo typing on Ava's lists", avas, "typing_status_update", 1, here);
leo1.emit("typing_stop", typing);
await eachGot("Leo stopped typing", avas, "typing_status_update", 2, here);

// A message of Leo's from before the block, still within the edit window.
out.notes.beforeBlock = await call(leo1, "send_message", message(cfg.texts.beforeBlock));
await eachGot("the message before the block", avas, "new_message", 1,
  (d) => d.message.content === cfg.texts.beforeBlock);

out.notes.block = await call(ava1, "block_user", { userId: cfg.leo });
await eachGot("Leo offline for Ava", avas, "user_status_update", 1,
  (d) => d.user_id === cfg.leo && d.status === "offline");
await eachGot("Ava offline for Leo", [leo1, leo2], "user_status_update", 1,
  (d) => d.user_id === cfg.ava && d.status === "offline");
await Promise.all(avas.map(roundTrip));
out.notes.atBlock = avas.map(leaks);

// Leo's client carries on: a send with an ack, one without (the seed's).
out.notes.blockedSend = await call(leo1, "send_message", message(cfg.texts.blockedAck));
leo2.emit("send_message", message(cfg.texts.blockedNoAck));
await until("leo2's bridge_error", () => received(leo2, "bridge_error").length >= 1);
// Nor may he put new words in front of her by editing an earlier message.
const earlier = out.notes.beforeBlock.message.id;
out.notes.blockedEdit = await call(leo1, "edit_message", { messageId: earlier, message: cfg.texts.blockedEdit });
out.rest.blockedEdit = await rest("PATCH", `/api/messages/${earlier}`, cfg.leoToken, { message: cfg.texts.blockedEdit });
fire(leo1, "typing_start", typing);
fire(leo1, "user_status", { userId: cfg.leo, status: "away" });
fire(leo1, "user_status", { userId: cfg.leo, status: "online" });
fire(leo1, "typing_stop", typing);
await roundTrip(leo1);
// Nor does Ava's typing reach him.
fire(ava1, "typing_start", { conversationId: cid, userId: cfg.ava });
fire(ava1, "typing_stop", { conversationId: cid, userId: cfg.ava });
await roundTrip(ava1);
// His phone reconnects (socket.io-client on its own) and rejoins its rooms.
leo2.io.engine.close();
await until("leo2 back", () => leo2.recording.connects === 2 && leo2.connected);
await roundTrip(leo2);
// Anything relayed to Ava before these round trips has arrived by now.
await Promise.all(avas.map(roundTrip));
out.notes.whileBlocked = avas.map(leaks);
await Promise.all([leo1, leo2].map(roundTrip));
out.notes.avaTypingToLeo = [leo1, leo2].map((s) => s.recording.events.filter(([event, d]) =>
  (event === "user_typing" && d.userId === cfg.ava) ||
  (event === "typing_status_update" && d.user_id === cfg.ava)).length);
out.notes.chatOpenWhileBlocked = await call(ava1, "join_conversation", cid);

const leoOnline = (d) => d.user_id === cfg.leo && d.status === "online";
out.notes.onlineBeforeUnblock = avas.map((s) => received(s, "user_status_update", leoOnline).length);
// The unblock shows each the other's status again (before its ack).
out.notes.unblock = await call(ava2, "unblock_user", cfg.leo);
await Promise.all(avas.map(roundTrip));
out.notes.onlineAfterUnblock = avas.map((s) => received(s, "user_status_update", leoOnline).length);
out.notes.afterUnblock = await call(leo1, "send_message", message(cfg.texts.afterUnblock));
await eachGot("the message after the unblock", avas, "new_message", 1,
  (d) => d.message.content === cfg.texts.afterUnblock);
out.notes.editAfterUnblock = await call(leo1, "edit_message", { messageId: earlier, message: cfg.texts.editAfterUnblock });
await eachGot("the edit after the unblock", avas, "message_updated", 1, (d) => d.message_id === earlier);
leo1.emit("typing_start", typing);
await until("Leo typing again", () => received(ava1, "user_typing", here).length >= 2);
leo1.emit("typing_stop", typing);
await Promise.all(all.map(roundTrip));
finish(0);
