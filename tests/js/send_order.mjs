// Sending as the seed's ChatWindow does (emit, no ack, back to back), from
// two sockets of one user, plus a burst buffered by socket.io-client while
// its connection is down and flushed when it comes back. Prints, as JSON,
// the order in which the partner's socket received the messages.
// Usage: node send_order.mjs URL CONFIG_JSON
import { cfg, connect, deadline, finish, out, seedMessage } from "./seed_client.mjs";

Object.assign(out, { received: [], reconnected: false });
deadline(20000);

const send = (socket, text) => socket.emit("send_message", {
  ...seedMessage(cfg.conversationId, cfg.sender, cfg.receiver, text),
  mediaUrl: "",
});

const receiver = await connect("receiver", cfg.receiver, cfg.receiverToken, { joinRooms: ["join"] });
await receiver.emitWithAck("join_conversation", cfg.conversationId);
const total = 3 * cfg.perBurst;
receiver.on("new_message", (data) => {
  if (data.conversation_id !== cfg.conversationId) return;
  out.received.push(data.message.content);
  if (out.received.length === total) setTimeout(() => finish(0), 300);
});

const phone = await connect("phone", cfg.sender, cfg.senderToken, { joinRooms: ["join"] });
const laptop = await connect("laptop", cfg.sender, cfg.senderToken, { joinRooms: ["join"] });

// Two sockets of one user sending back to back at the same time.
for (let i = 0; i < cfg.perBurst; i++) {
  send(phone, `phone-${i}`);
  send(laptop, `laptop-${i}`);
}

// The phone's connection drops; what it sends meanwhile is buffered by
// socket.io-client and flushed, in order, after it reconnects.
phone.once("disconnect", () => {
  for (let i = 0; i < cfg.perBurst; i++) send(phone, `offline-${i}`);
  phone.once("connect", () => { out.reconnected = true; });
});
phone.io.engine.close();
