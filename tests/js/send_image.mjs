// Sending a photo as the seed's React client would, with the bridge's
// attachment API: the sender's app asks its socket for an upload URL
// (`attachment_upload`), PUTs the file with fetch (as a browser does with a
// File from <input type="file">), then emits `send_message` with
// messageType "image" and the path as mediaUrl (the seed's form fields);
// the receiver's ChatWindow gets `new_message` and, to show the image,
// asks `attachment_url` and fetches the bytes. Prints, as JSON, what each
// side saw. Usage: node send_image.mjs URL CONFIG_JSON
import { cfg, connect, deadline, finish, out } from "./seed_client.mjs";

deadline(20000);

const bytes = Buffer.from(cfg.imageBase64, "base64");
const receiver = await connect("receiver", cfg.receiver, cfg.receiverToken, { joinRooms: ["join"] });
await receiver.emitWithAck("join_conversation", cfg.conversationId);
const arrived = new Promise((resolve) => {
  receiver.on("new_message", (data) => {
    if (data.message.message_type === "image") resolve(data);
  });
});

const sender = await connect("sender", cfg.sender, cfg.senderToken, { joinRooms: ["join"] });
const ticket = await sender.emitWithAck("attachment_upload", {
  conversationId: cfg.conversationId,
  filename: "moodboard.png",
  contentType: "image/png",
  size: bytes.length,
});
out.ticket = ticket;
if (!ticket.ok) await finish(1);
const put = await fetch(ticket.uploadUrl, {
  method: ticket.method,
  headers: ticket.headers,
  body: new Blob([bytes], { type: "image/png" }),
});
out.uploadStatus = put.status;

// The seed's ChatWindow emits without an ack; the form's unused text is "".
sender.emit("send_message", {
  conversationId: cfg.conversationId,
  senderId: cfg.sender,
  receiverId: cfg.receiver,
  message: "",
  mediaUrl: ticket.path,
  messageType: "image",
});
const event = await arrived;
out.received = event.message;
const link = await receiver.emitWithAck("attachment_url", { messageId: event.message.id });
out.link = link;
const image = await fetch(link.url);
out.downloadStatus = image.status;
out.downloadType = image.headers.get("content-type");
out.sameBytes = Buffer.from(await image.arrayBuffer()).equals(bytes);
// A wrong type is refused before anything is stored.
out.refused = await sender.emitWithAck("attachment_upload", {
  conversationId: cfg.conversationId,
  filename: "page.html",
  contentType: "text/html",
  size: 10,
});
finish(0);
