// The seed's own client code paths (useSocket, ChatWindow, ChatList) with
// the real socket.io-client, against a running bridge. Prints what each
// side received as JSON; tests/integration/test_js_client.py checks it.
// Usage: node seed_flow.mjs URL CONFIG_JSON
import { cfg, connect, deadline, finish, out, until, useSocket } from "./seed_client.mjs";

Object.assign(out, { connectError: null, ava: {}, leo: {} });
deadline(10000);

// A bad token: connect_error says why.
const bad = useSocket("bad", undefined, cfg.expiredToken, { joinRooms: false, reconnection: false });
await until("the bad token refused", () => bad.recording.connectErrors.length > 0);
out.connectError = bad.recording.connectErrors[0];
bad.close();

// hooks/useSocket.js, plus the token
const ava = await connect("ava", cfg.ava, cfg.avaToken);
const leo = await connect("leo", cfg.leo, cfg.leoToken);

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
    setTimeout(() => finish(0), 300);
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
