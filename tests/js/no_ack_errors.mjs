// The seed's send_message without an ack, as its ChatWindow sends it, with
// the form's unused inputs as '' (mediaUrl, messageType, clientMessageId);
// then a refused send, still without an ack: the refusal arrives as the
// `bridge_error` event. Prints what each side received as JSON;
// tests/integration/test_hostile_clients.py checks it.
// Usage: node no_ack_errors.mjs URL CONFIG_JSON
import { io } from "socket.io-client";

const [url, configJson] = process.argv.slice(2);
const cfg = JSON.parse(configJson);
const out = { delivered: null, errors: [], otherDeviceErrors: [] };
const done = (code) => { console.log(JSON.stringify(out)); process.exit(code); };
setTimeout(() => { out.timeout = true; done(1); }, 10000);

function connect(userId, token) {
  const socket = io(url, { auth: { userId, token }, transports: ["websocket"] });
  return new Promise((resolve, reject) => {
    socket.on("connect", () => resolve(socket));
    socket.on("connect_error", reject);
  });
}

const ava = await connect(cfg.ava, cfg.avaToken);
const leo = await connect(cfg.leo, cfg.leoToken);
const leoOtherDevice = await connect(cfg.leo, cfg.leoToken);
leoOtherDevice.on("bridge_error", (e) => out.otherDeviceErrors.push(e));
await ava.emitWithAck("join_conversation", cfg.conversationId);

ava.on("new_message", (data) => { out.delivered = data.message; });
leo.on("bridge_error", (error) => {
  out.errors.push(error);
  setTimeout(() => done(0), 300);
});

leo.emit("send_message", {
  conversationId: cfg.conversationId,
  senderId: cfg.leo,
  receiverId: cfg.ava,
  message: "no attachment",
  mediaUrl: "",
  messageType: "",
  clientMessageId: "",
});
await new Promise((r) => setTimeout(r, 300));
leo.emit("send_message", { conversationId: cfg.foreignConversation, message: "let me in" });
