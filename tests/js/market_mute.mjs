// Ava mutes a conversation from one of her two sockets (until unmuted),
// Leo writes the seed's way; then she mutes it until a time, then unmutes;
// then quiet hours around now, then none.
// The chat list is read over REST at each step.
// Usage: node market_mute.mjs URL CONFIG_JSON
import {
  about, call, cfg, chatEntry, connected, eachGot, finish, out, roundTrip, seedMessage, useSocket,
} from "./seed_client.mjs";

const cid = cfg.conversationId;
const ava1 = useSocket("ava1", cfg.ava, cfg.avaToken);
const ava2 = useSocket("ava2", cfg.ava, cfg.avaToken);
const leo1 = useSocket("leo1", cfg.leo, cfg.leoToken);
const avas = [ava1, ava2];
await Promise.all([ava1, ava2, leo1].map(connected));
await Promise.all([ava1, ava2, leo1].map(roundTrip));
const here = about(cid);
const send = (text) => leo1.emit("send_message", seedMessage(cid, cfg.leo, cfg.ava, text));

out.rest.before = await chatEntry(cfg.avaToken, cid);
out.notes.mute = await call(ava1, "mute_conversation", { conversationId: cid });
out.rest.muted = await chatEntry(cfg.avaToken, cid);
for (const text of cfg.texts.muted) send(text);
await eachGot("the messages on both of Ava's sockets", avas, "new_message", cfg.texts.muted.length, here);
await eachGot("the counts on both", avas, "unread_count_updated", cfg.texts.muted.length, here);
out.rest.afterMessages = await chatEntry(cfg.avaToken, cid);

out.notes.muteUntil = await call(ava2, "mute_conversation", { conversationId: cid, until: cfg.until });
out.rest.mutedUntil = await chatEntry(cfg.avaToken, cid);
out.notes.unmute = await call(ava1, "unmute_conversation", cid);
out.notes.unmuteAgain = await call(ava1, "unmute_conversation", { conversationId: cid });
out.rest.unmuted = await chatEntry(cfg.avaToken, cid);
send(cfg.texts.unmuted);
await eachGot("the message after unmuting", avas, "new_message", cfg.texts.muted.length + 1, here);

// Quiet hours around now: messages and counts go on too; null clears them.
out.notes.quiet = await call(ava2, "set_quiet_hours", cfg.quietHours);
send(cfg.texts.quiet);
await eachGot("the message in quiet hours", avas, "new_message", cfg.texts.muted.length + 2, here);
out.notes.quietCleared = await call(ava2, "set_quiet_hours", null);
await Promise.all(avas.map(roundTrip));
finish(0);
