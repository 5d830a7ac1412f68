// Against a bridge with tight limits (a burst of cfg.burst sends per user,
// nothing refilled during the scenario; two sockets per user): Leo's client
// floods send_message from one socket without waiting for acks while Ava's
// client sends her burst to Mia at the same time; then Leo's other socket
// sends the seed's way (no ack). A third socket of Leo's is refused; once one
// of his is closed a new one gets in.
// Usage: node market_flood.mjs URL CONFIG_JSON
import {
  acksOf, cfg, connected, eachGot, finish, fire, out, received, roundTrip, sleep, until, useSocket,
} from "./seed_client.mjs";

const leo1 = useSocket("leo1", cfg.leo, cfg.leoToken);
const leo2 = useSocket("leo2", cfg.leo, cfg.leoToken);
const ava1 = useSocket("ava1", cfg.ava, cfg.avaToken);
const ava2 = useSocket("ava2", cfg.ava, cfg.avaToken);
const mia1 = useSocket("mia1", cfg.mia, cfg.miaToken);
const mia2 = useSocket("mia2", cfg.mia, cfg.miaToken);
const everyone = [leo1, leo2, ava1, ava2, mia1, mia2];
await Promise.all(everyone.map(connected));
await Promise.all(everyone.map(roundTrip));
const message = (conversationId, text) => ({ conversationId, message: text, clientMessageId: text });

const flood = cfg.texts.flood;
const avas = cfg.texts.ava;
for (let i = 0; i < flood.length; i++) {
  fire(leo1, "send_message", message(cfg.leoConversation, flood[i]));
  if (i < avas.length) fire(ava1, "send_message", message(cfg.avaConversation, avas[i]));
}
await until("every ack of the flood", () => acksOf(leo1, "send_message").length === flood.length);
// The seed's own sends (no ack) from Leo's other socket: refusals come as bridge_error.
for (const text of cfg.texts.noAck) leo2.emit("send_message", message(cfg.leoConversation, text));
await until("bridge_errors", () => received(leo2, "bridge_error").length === cfg.texts.noAck.length);
await until("Ava's acks", () => acksOf(ava1, "send_message").length === avas.length);
await eachGot("Ava's messages on Mia's sockets", [mia1, mia2], "new_message", avas.length);
await eachGot("Leo's accepted ones on Ava's sockets", [ava1, ava2], "new_message", cfg.burst,
  (d) => d.conversation_id === cfg.leoConversation);
await Promise.all(everyone.map(roundTrip));

// A third socket of Leo's: refused, and socket.io-client says why.
const leo3 = useSocket("leo3", cfg.leo, cfg.leoToken);
await until("leo3 refused", () => leo3.recording.connectErrors.length === 1);
out.notes.leo3Active = leo3.active; // no reconnection attempts after a refusal
leo3.close();
// One of his sockets closes: a new one gets in (the close is seen on the
// bridge's side soon after; until then the new one is refused and retried).
leo2.close();
for (let attempt = 0; ; attempt++) {
  const again = useSocket(`leo4_${attempt}`, cfg.leo, cfg.leoToken);
  const result = await until("leo4 answered",
    () => (again.connected ? "in" : again.recording.connectErrors.length ? "refused" : null));
  if (result === "in") { out.notes.leo4 = `leo4_${attempt}`; await roundTrip(again); break; }
  again.close();
  if (attempt > 50) { out.failed = "a new socket never got in"; finish(1); }
  await sleep(100);
}
finish(0);
