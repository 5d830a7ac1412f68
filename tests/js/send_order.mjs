// Sending as the seed's ChatWindow does (emit, no ack, back to back), from
// two sockets of one user, plus a burst buffered by socket.io-client while
// its connection is down and flushed when it comes back. Prints, as JSON,
// the order in which the partner's socket received the messages.
// Usage: node send_order.mjs URL CONFIG_JSON
import { io } from "socket.io-client";

const [url, configJson] = process.argv.slice(2);
const cfg = JSON.parse(configJson);
const out = { received: [], reconnected: false };
const done = (code) => { console.log(JSON.stringify(out)); process.exit(code); };
setTimeout(() => { out.timeout = true; done(1); }, 20000);

function connect(userId, token) {
  const socket = io(url, {
    auth: { userId, token },
    transports: ["websocket"],
    reconnectionDelay: 100,
    reconnectionDelayMax: 200,
  });
  return new Promise((resolve, reject) => {
    socket.once("connect", () => {
      socket.emit("join", userId);
      resolve(socket);
    });
    socket.once("connect_error", reject);
  });
}

const send = (socket, text) =>
  socket.emit("send_message", {
    conversationId: cfg.conversationId,
    senderId: cfg.sender,
    receiverId: cfg.receiver,
    message: text,
    mediaUrl: "",
  });

const receiver = await connect(cfg.receiver, cfg.receiverToken);
await receiver.emitWithAck("join_conversation", cfg.conversationId);
const total = 3 * cfg.perBurst;
receiver.on("new_message", (data) => {
  if (data.conversation_id !== cfg.conversationId) return;
  out.received.push(data.message.content);
  if (out.received.length === total) setTimeout(() => done(0), 300);
});

const phone = await connect(cfg.sender, cfg.senderToken);
const laptop = await connect(cfg.sender, cfg.senderToken);

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
