// Delivery receipts the way a client built on the seed's would send them:
// Mia's app acknowledges every `new_message` from someone else with
// `message_delivered` on each of her two sockets; Ava sends without acks.
// Then Mia goes offline, Ava sends, Mia comes back on one device and calls
// `sync` without acknowledging the replayed messages herself; then Ava
// sends from a socket whose connection just dropped (socket.io-client
// buffers it and flushes it on reconnect).
// Usage: node market_receipts.mjs URL CONFIG_JSON
import {
  about, call, cfg, chatEntry, connected, eachGot, finish, fire, out, received, rest, seedMessage,
  until, useSocket,
} from "./seed_client.mjs";

const cid = cfg.conversationId;
const ava1 = useSocket("ava1", cfg.ava, cfg.avaToken);
const ava2 = useSocket("ava2", cfg.ava, cfg.avaToken);
const mia1 = useSocket("mia1", cfg.mia, cfg.miaToken);
const mia2 = useSocket("mia2", cfg.mia, cfg.miaToken);
const avas = [ava1, ava2];
await Promise.all([ava1, ava2, mia1, mia2].map(connected));
const here = about(cid);
const send = (socket, text) => socket.emit("send_message", seedMessage(cid, cfg.ava, cfg.mia, text));

let acking = true;
for (const socket of [mia1, mia2]) {
  socket.on("new_message", (data) => {
    if (acking && data.message.sender_id !== cfg.mia) {
      fire(socket, "message_delivered", { messageIds: [data.message.id] });
    }
  });
}
const deliveredIds = (socket) =>
  received(socket, "message_delivered", (d) => here(d) && d.userId === cfg.mia).flatMap((d) => d.messageIds);
const idsOf = (texts) => texts.map((text) =>
  received(ava1, "new_message", (d) => d.message.content === text)[0].message.id);

// Live: both of Mia's devices acknowledge each message.
const live = cfg.texts.live;
for (const text of live) send(ava1, text);
await eachGot("Ava's messages on Mia's devices", [mia1, mia2], "new_message", live.length, here);
await eachGot("Ava's own copies", avas, "new_message", live.length, here);
out.notes.liveIds = idsOf(live);
await until("receipts for the live messages",
  () => avas.every((s) => out.notes.liveIds.every((id) => deliveredIds(s).includes(id))));
await until("Mia's acks", () =>
  mia1.recording.acks.length + mia2.recording.acks.length >= 2 * live.length);

// Offline: Mia closes the app; Ava writes.
const lastEventId = Math.max(...received(mia1, "new_message").map((d) => d.event_id));
mia1.disconnect();
mia2.disconnect();
acking = false;
const missed = cfg.texts.missed;
for (const text of missed) send(ava1, text);
await eachGot("Ava's own copies of the missed", avas, "new_message", live.length + missed.length, here);
out.notes.missedIds = idsOf(missed);

// Back on one device: rooms, then sync; the replay itself is the delivery.
mia1.connect();
await until("Mia back", () => mia1.connected && mia1.recording.connects === 2);
out.notes.sync = await call(mia1, "sync", { lastEventId });
await until("receipts for the missed messages",
  () => avas.every((s) => out.notes.missedIds.every((id) => deliveredIds(s).includes(id))));

// Ava's laptop loses its connection and sends meanwhile: buffered, flushed
// on reconnect, acknowledged by Mia's app, receipted to both of Ava's.
acking = true;
ava2.io.engine.close();
await until("ava2 offline", () => !ava2.connected);
send(ava2, cfg.texts.buffered);
await until("ava2 back", () => ava2.connected && ava2.recording.connects === 2);
await until("the buffered message on Mia's device",
  () => received(mia1, "new_message", (d) => d.message.content === cfg.texts.buffered).length);
out.notes.bufferedId = idsOf([cfg.texts.buffered])[0];
await until("its receipt", () => avas.every((s) => deliveredIds(s).includes(out.notes.bufferedId)));

out.rest.history = (await rest("GET", `/api/conversations/${cid}/messages?limit=100`, cfg.avaToken)).body;
out.rest.entry = await chatEntry(cfg.avaToken, cid);
finish(0);
