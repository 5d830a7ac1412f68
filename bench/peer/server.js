// The seed guide's chat server (../../../shared/seed/, "Backend Implementation"
// and "Socket Events Reference") as a Node developer following the guide
// builds it: express + socket.io 4.8 + node-postgres, one process.
//
// It is the bench's point of comparison for the bridge's socket send path
// (bench/send_path.py), not a model to copy:
// - It trusts whatever user id a socket names in `join` (and `senderId` in
//   `send_message`), as the guide's server does: no authentication at all.
// - It writes as the database owner (the `postgres` role of DATABASE_URL), so
//   RLS does not apply; the triggers of the bridge's migrations still run
//   (conversation bookkeeping, the outbox rows), so Postgres does the same
//   work per message as it does for the bridge.
// - Each event is one plain query (or two) through the pool, autocommit, and
//   the server emits to the rooms itself right after the INSERT returns.
//
// Settings from the environment, with the guide's names: SOCKET_PORT (or
// PORT), CORS_ORIGIN, DATABASE_URL.

const express = require("express");
const http = require("http");
const socketIo = require("socket.io");
const { Pool } = require("pg");

const app = express();
app.use(express.json());
const server = http.createServer(app);

const io = socketIo(server, {
  cors: {
    origin: process.env.CORS_ORIGIN?.split(",") || [
      "http://localhost:3000",
      "http://localhost:3001",
      "http://localhost:5173",
      "http://localhost:8081",
    ],
    methods: ["GET", "POST"],
    credentials: true,
  },
});

const pool = new Pool({ connectionString: process.env.DATABASE_URL });
pool.on("error", (err) => console.error("pg pool error:", err.message));

// userId -> number of connected sockets, and conversation partners per user
// (looked up on join) for the online/offline announcements.
const onlineUsers = new Map();
const partnersOf = new Map();

const now = () => new Date().toISOString();

function conversationContext(c) {
  return {
    conversation_type: c.conversation_type,
    flow_state: c.flow_state,
    awaiting_role: c.awaiting_role,
    chat_status: c.chat_status,
    bid_id: c.bid_id,
    campaign_id: c.campaign_id,
    brand_owner_id: c.brand_owner_id,
    influencer_id: c.influencer_id,
  };
}

function unreadFor(c, userId) {
  return c.brand_owner_id === userId ? c.brand_owner_unread_count : c.influencer_unread_count;
}

function announceStatus(userId, status) {
  const partners = partnersOf.get(userId) || [];
  if (partners.length === 0) return;
  io.to(partners.map((p) => `user_${p}`)).emit("user_status_update", {
    user_id: userId,
    status,
    timestamp: now(),
  });
}

async function sendMessage({ conversationId, senderId, message, mediaUrl, messageType, clientMessageId }) {
  const { rows } = await pool.query(
    `INSERT INTO messages (conversation_id, sender_id, content, message_type, media_url, client_message_id)
     VALUES ($1, $2, $3, $4, $5, $6) RETURNING *`,
    [conversationId, senderId, message || "", messageType || "text", mediaUrl || null, clientMessageId || null],
  );
  const saved = rows[0];
  const conv = (await pool.query("SELECT * FROM conversations WHERE id = $1", [conversationId])).rows[0];
  const receiverId = conv.brand_owner_id === senderId ? conv.influencer_id : conv.brand_owner_id;
  const msg = { ...saved, type: saved.message_type };
  const timestamp = now();

  io.to(`conversation_${conversationId}`).emit("new_message", {
    conversation_id: conversationId,
    message: msg,
    conversation_context: conversationContext(conv),
  });
  for (const userId of [senderId, receiverId]) {
    io.to(`user_${userId}`).emit("conversation_list_updated", {
      conversation_id: conversationId,
      action: "new_message",
      message: msg,
      timestamp,
      flow_state: conv.flow_state,
      awaiting_role: conv.awaiting_role,
      chat_status: conv.chat_status,
      unread_count: unreadFor(conv, userId),
    });
  }
  io.to(`user_${receiverId}`).emit("unread_count_updated", {
    conversation_id: conversationId,
    unread_count: unreadFor(conv, receiverId),
    action: "new_message",
    timestamp,
  });
  return msg;
}

io.on("connection", (socket) => {
  const ack = (cb, body) => {
    if (typeof cb === "function") cb(body);
  };
  const fail = (cb, err) => {
    console.error("socket event failed:", err.message);
    ack(cb, { ok: false, error: { message: err.message } });
  };

  // The guide's client: io(url, { auth: { userId } }), then emit('join', userId).
  socket.on("join", async (userId, cb) => {
    userId = typeof userId === "object" && userId ? userId.userId : userId;
    socket.data.userId = userId;
    socket.join(`user_${userId}`);
    onlineUsers.set(userId, (onlineUsers.get(userId) || 0) + 1);
    try {
      if (!partnersOf.has(userId)) {
        const { rows } = await pool.query(
          `SELECT CASE WHEN brand_owner_id = $1 THEN influencer_id ELSE brand_owner_id END AS partner
           FROM conversations WHERE brand_owner_id = $1 OR influencer_id = $1`,
          [userId],
        );
        partnersOf.set(userId, rows.map((r) => r.partner));
      }
      announceStatus(userId, "online");
      ack(cb, { ok: true, room: `user_${userId}` });
    } catch (err) {
      fail(cb, err);
    }
  });

  socket.on("join_global_updates", (userId) => socket.join(`global_${userId}`));
  socket.on("request_global_notifications", (userId) => socket.join(`notifications_${userId}`));

  socket.on("join_conversation", (conversationId, cb) => {
    conversationId = typeof conversationId === "object" && conversationId ? conversationId.conversationId : conversationId;
    socket.join(`conversation_${conversationId}`);
    ack(cb, { ok: true, room: `conversation_${conversationId}` });
  });

  socket.on("leave_conversation", (conversationId) => socket.leave(`conversation_${conversationId}`));

  socket.on("send_message", async (data, cb) => {
    try {
      const message = await sendMessage({ ...data, senderId: data.senderId || socket.data.userId });
      ack(cb, { ok: true, message });
    } catch (err) {
      fail(cb, err);
    }
  });

  socket.on("typing_start", ({ conversationId, userId }) => {
    const payload = { conversationId, userId, isTyping: true };
    socket.to(`conversation_${conversationId}`).emit("user_typing", payload);
    socket.to(`conversation_${conversationId}`).emit("typing_status_update", {
      conversation_id: conversationId, user_id: userId, is_typing: true, timestamp: now(),
    });
  });

  socket.on("typing_stop", ({ conversationId, userId }) => {
    const payload = { conversationId, userId, isTyping: false };
    socket.to(`conversation_${conversationId}`).emit("user_typing", payload);
    socket.to(`conversation_${conversationId}`).emit("typing_status_update", {
      conversation_id: conversationId, user_id: userId, is_typing: false, timestamp: now(),
    });
  });

  socket.on("mark_seen", async ({ messageId, userId, conversationId }, cb) => {
    userId = userId || socket.data.userId;
    try {
      if (messageId) {
        const { rows } = await pool.query(
          "UPDATE messages SET is_read = true WHERE id = $1 AND NOT is_read RETURNING sender_id, conversation_id",
          [messageId],
        );
        if (rows[0]) {
          const timestamp = now();
          io.to(`user_${rows[0].sender_id}`).emit("message_seen", {
            messageId, userId, conversationId: rows[0].conversation_id, timestamp,
          });
          io.to(`user_${userId}`).emit("message_seen_update", {
            messageId, conversationId: rows[0].conversation_id, timestamp,
          });
        }
      } else {
        const { rows } = await pool.query(
          `UPDATE messages SET is_read = true
           WHERE conversation_id = $1 AND sender_id <> $2 AND NOT is_read RETURNING sender_id`,
          [conversationId, userId],
        );
        const timestamp = now();
        for (const senderId of new Set(rows.map((r) => r.sender_id))) {
          io.to(`user_${senderId}`).emit("messages_seen", { conversationId, userId, timestamp });
        }
        io.to(`user_${userId}`).emit("messages_seen_update", { conversationId, timestamp });
      }
      ack(cb, { ok: true });
    } catch (err) {
      fail(cb, err);
    }
  });

  socket.on("user_status", ({ userId, status }) => announceStatus(userId || socket.data.userId, status));

  socket.on("disconnect", () => {
    const userId = socket.data.userId;
    if (!userId) return;
    const left = (onlineUsers.get(userId) || 1) - 1;
    if (left > 0) {
      onlineUsers.set(userId, left);
      return;
    }
    onlineUsers.delete(userId);
    announceStatus(userId, "offline");
    pool.query("UPDATE users SET last_seen_at = now() WHERE id = $1", [userId]).catch(() => {});
  });
});

// The guide's test endpoints.
app.get("/test-socket", (_req, res) => {
  res.json({ status: "ok", connections: io.engine.clientsCount, online_users: onlineUsers.size });
});

app.post("/test-message", async (req, res) => {
  try {
    res.json({ success: true, message: await sendMessage(req.body) });
  } catch (err) {
    res.status(400).json({ success: false, error: err.message });
  }
});

const port = Number(process.env.SOCKET_PORT || process.env.PORT || 3000);
server.listen(port, "127.0.0.1", () => console.log(`peer server on :${port}`));

const shutdown = () => {
  io.close();
  pool.end().finally(() => process.exit(0));
};
process.on("SIGTERM", shutdown);
process.on("SIGINT", shutdown);
