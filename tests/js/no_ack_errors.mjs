// The seed's send_message without an ack, as its ChatWindow sends it, with
// the form's unused inputs as '' (mediaUrl, messageType, clientMessageId);
// then a refused send, still without an ack: the refusal arrives as the
// `bridge_error` event. Prints what each side received as JSON;
// tests/integration/test_hostile_clients.py checks it.
// Usage: node no_ack_errors.mjs URL CONFIG_JSON
import { cfg, connect, deadline, finish, out } from "./seed_client.mjs";

Object.assign(out, { delivered: null, errors: [], otherDeviceErrors: [] });
deadline(10000);

const ava = await connect("ava", cfg.ava, cfg.avaToken, { joinRooms: false });
const leo = await connect("leo", cfg.leo, cfg.leoToken, { joinRooms: false });
const leoOtherDevice = await connect("leoOtherDevice", cfg.leo, cfg.leoToken, { joinRooms: false });
leoOtherDevice.on("bridge_error", (e) => out.otherDeviceErrors.push(e));
await ava.emitWithAck("join_conversation", cfg.conversationId);

ava.on("new_message", (data) => { out.delivered = data.message; });
leo.on("bridge_error", (error) => {
  out.errors.push(error);
  setTimeout(() => finish(0), 300);
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
