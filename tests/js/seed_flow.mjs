// The seed's own client code paths (useSocket, ChatWindow, ChatList) with
// the real socket.io-client, against a running bridge. Prints what each
// side received as JSON; tests/integration/test_js_client.py checks it.
// Usage: node seed_flow.mjs URL CONFIG_JSON
import { io } from "socket.io-client";

const [url, configJson] = process.argv.slice(2);
const cfg = JSON.parse(configJson);
const out = { connectError: null, ava: {}, leo: {} };
const done = (code) => { console.log(JSON.stringify(out)); process.exit(code); };
setTimeout(() => { out.timeout = true; done(1); }, 10000);

function useSocket(userId, token) {
  // hooks/useSocket.js, plus the token
  const socket = io(url, { auth: { userId, token }, transports: ["websocket"] });
  return new Promise((resolve, reject) => {
    socket.on("connect", () => {
      socket.emit("join", userId);
      socket.emit("join_global_updates", userId);
      socket.emit("request_global_notifications", userId);
      resolve(socket);
    });
    socket.on("connect_error", reject);
  });
}

// A bad token: connect_error says why.
await new Promise((resolve) => {
  const bad = io(url, { auth: { token: cfg.expiredToken }, transports: ["websocket"] });
  bad.on("connect_error", (err) => {
    out.connectError = { message: err.message, data: err.data };
    bad.close();
    resolve();
  });
});

const ava = await useSocket(cfg.ava, cfg.avaToken);
const leo = await useSocket(cfg.leo, cfg.leoToken);

// components/ChatWindow.jsx for Ava
const joined = await ava.emitWithAck("join_conversation", cfg.conversationId);
out.ava.joinAck = joined;
out.ava.typing = [];
ava.on("user_typing", (data) => {
  if (data.conversationId === cfg.conversationId) out.ava.typing.push(data);
});
// components/ChatList.jsx for Ava
ava.on("conversation_list_updated", (data) => { out.ava.listUpdated = data; });
ava.on("unread_count_updated", (data) => { out.ava.unread = data; });
ava.on("new_message", (data) => {
  if (data.conversation_id === cfg.conversationId) {
    out.ava.newMessage = data;
    setTimeout(() => done(0), 300);
  }
});

leo.emit("typing_start", { conversationId: cfg.conversationId, userId: cfg.leo });
await new Promise((r) => setTimeout(r, 200));
// ChatWindow.sendMessage, exactly as the seed sends it (no ack)
leo.emit("send_message", {
  conversationId: cfg.conversationId,
  senderId: cfg.leo,
  receiverId: cfg.ava,
  message: "Hello from socket.io-client",
});
