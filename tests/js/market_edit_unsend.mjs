// Edit and unsend from one of Leo's two sockets, Ava on two sockets too:
// Leo sends two messages the seed's way (no ack), edits the first, unsends
// the second (unread by Ava); Ava tries to edit and unsend Leo's message
// (with an ack, and once without one); a last message from Leo is the marker
// after which everything sent before it has arrived; Leo edits it (the chat
// list's last message). The chat list is read over REST at each step.
// Usage: node market_edit_unsend.mjs URL CONFIG_JSON
import {
  about, call, cfg, chatEntry, chatOnTwoDevicesEach, eachGot, finish, out, received, rest,
  roundTrip, seedMessage, until,
} from "./seed_client.mjs";

const cid = cfg.conversationId;
// ChatWindow is open on one device of each.
const { ava1, ava2, leo1, leo2, all } = await chatOnTwoDevicesEach(cid);
const here = about(cid);
const send = (text) => leo1.emit("send_message", seedMessage(cid, cfg.leo, cfg.ava, text));

out.rest.before = await chatEntry(cfg.avaToken, cid);
send(cfg.texts.first);
send(cfg.texts.second);
await eachGot("both messages on every socket", all, "new_message", 2, here);
const idOf = (text) => received(leo1, "new_message", (d) => d.message.content === text)[0].message.id;
const [first, second] = [idOf(cfg.texts.first), idOf(cfg.texts.second)];
out.notes.ids = { first, second };
out.rest.afterSends = await chatEntry(cfg.avaToken, cid);

out.notes.edit = await call(leo1, "edit_message", { messageId: first, message: cfg.texts.edited });
await eachGot("the edit on every socket", all, "message_updated", 1, here);
out.notes.unsend = await call(leo1, "unsend_message", second);
await eachGot("the unsend on every socket", all, "message_deleted", 1, here);
await eachGot("Ava's lower count", [ava1, ava2], "unread_count_updated", 1,
  (d) => here(d) && d.action === "message_deleted");
out.rest.afterUnsend = await chatEntry(cfg.avaToken, cid);
out.rest.leoAfterUnsend = await chatEntry(cfg.leoToken, cid);

// Ava on Leo's message: refused, with an ack and without one.
out.notes.foreignEdit = await call(ava1, "edit_message",
  { messageId: first, conversationId: cid, message: cfg.texts.foreign });
out.notes.foreignUnsend = await call(ava1, "unsend_message", { messageId: first });
ava2.emit("edit_message", { messageId: first, message: cfg.texts.foreign });
await until("ava2's bridge_error", () => received(ava2, "bridge_error").length >= 1);

send(cfg.texts.marker);
await eachGot("the marker on every socket", all, "new_message", 3, here);
// An edit of the last message: the chat lists show the new text. Ava's
// laptop is closed meanwhile; reopened, it asks `sync` for what it missed.
const marker = idOf(cfg.texts.marker);
await roundTrip(ava2); // the marker's chat-list and count events are in too
const lastSeen = Math.max(...ava2.recording.events.map(([, d]) => d?.event_id ?? 0));
ava2.disconnect();
out.notes.lastEdit = await call(leo1, "edit_message", { messageId: marker, message: cfg.texts.markerEdited });
await eachGot("the last message's edit on the open sockets", [ava1, leo1, leo2], "message_updated", 2, here);
ava2.connect();
await until("ava2 back", () => ava2.connected && ava2.recording.connects === 2);
out.notes.sync = await call(ava2, "sync", { lastEventId: lastSeen });
await eachGot("the edit replayed", [ava2], "message_updated", 2, here);
out.rest.final = await chatEntry(cfg.avaToken, cid);
out.rest.leoFinal = await chatEntry(cfg.leoToken, cid);
out.rest.history = (await rest("GET", `/api/conversations/${cid}/messages?limit=50`, cfg.leoToken)).body;
finish(0);
