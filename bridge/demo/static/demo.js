// The demo chat page: one person per tab, talking to the bridge the way any
// client does (socket.io-client events and the REST API of the README). Only
// sign-in (/demo/api/token) and flow steps (/demo/api/flow-action, the
// flow-action edge function's body) are the dev-only stand-ins for Supabase.
import { io } from "./vendor/socket.io.esm.min.js";

const $ = (id) => document.getElementById(id);
const state = {
  me: null, users: [], token: null, socket: null, refreshTimer: null,
  chats: new Map(), open: null, messages: new Map(), nextCursor: null,
  statuses: new Map(), typingIn: new Set(), lastEventId: 0,
  typingSince: 0, typingTimer: null,
  mediaUrls: new Map(), // message id -> { url, until }: signed read URLs, cached until they expire
};

// The flow machine (docs/flow.md): which steps each role may take per state.
const FLOW = {
  influencer_responding: [["accept", "influencer", "Accept request"], ["decline", "influencer", "Decline"]],
  brand_owner_confirming: [["confirm", "brand_owner", "Confirm"], ["cancel", "brand_owner", "Cancel collaboration"]],
  work_in_progress: [["submit_work", "influencer", "Submit work"], ["cancel", "brand_owner", "Cancel collaboration"]],
  work_review: [["approve_work", "brand_owner", "Approve work"], ["request_revision", "brand_owner", "Request revision"]],
};
const STATE_LABEL = {
  influencer_responding: "Connection request", brand_owner_confirming: "Awaiting confirmation",
  work_in_progress: "Work in progress", work_review: "Work in review",
  completed: "Completed", declined: "Declined", cancelled: "Cancelled",
};
const ROLE_LABEL = { brand_owner: "brand owner", influencer: "influencer" };

// -- small DOM helpers ---------------------------------------------------------

function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (key.startsWith("on")) el.addEventListener(key.slice(2), value);
    else if (key === "class") el.className = value;
    else el.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child !== null && child !== undefined && child !== false) {
      el.append(child instanceof Node ? child : String(child));
    }
  }
  return el;
}

function avatar(user, size = "") {
  const name = user?.name || "?";
  const initials = name.split(/\s+/).map((w) => w[0]).join("").slice(0, 2).toUpperCase();
  const hue = [...(user?.id || name)].reduce((v, c) => (v * 33 + c.charCodeAt(0)) % 3607, 7) % 360;
  const el = h("span", { class: `avatar ${size}`, style: `--hue:${hue}`, "aria-hidden": "true" }, initials);
  if (user?.profile_image_url) {
    // Storage or external URLs may not answer on a dev machine: initials stay.
    const img = h("img", { src: user.profile_image_url, alt: "", loading: "lazy" });
    img.addEventListener("error", () => img.remove());
    el.append(img);
  }
  return el;
}

function clock(iso) {
  if (!iso) return "";
  const d = new Date(iso);
  const today = new Date().toDateString() === d.toDateString();
  return today
    ? d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" })
    : d.toLocaleDateString([], { day: "numeric", month: "short" });
}

function toast(text, kind = "info") {
  const el = h("div", { class: `toast ${kind}`, role: kind === "error" ? "alert" : "status" }, text);
  $("toasts").append(el);
  setTimeout(() => el.remove(), 5000);
}

function uuid() {
  if (crypto.randomUUID) return crypto.randomUUID();
  const b = crypto.getRandomValues(new Uint8Array(16));
  b[6] = (b[6] & 0x0f) | 0x40; b[8] = (b[8] & 0x3f) | 0x80;
  const x = [...b].map((v) => v.toString(16).padStart(2, "0")).join("");
  return `${x.slice(0, 8)}-${x.slice(8, 12)}-${x.slice(12, 16)}-${x.slice(16, 20)}-${x.slice(20)}`;
}

// -- REST ----------------------------------------------------------------------

async function api(method, path, body) {
  const headers = { "Content-Type": "application/json" };
  if (state.token) headers.Authorization = `Bearer ${state.token}`;
  const resp = await fetch(path, { method, headers, body: body ? JSON.stringify(body) : undefined });
  const data = await resp.json().catch(() => ({}));
  if (!resp.ok) throw new Error(data.error?.message || `${method} ${path}: ${resp.status}`);
  return data;
}

// Emits with an ack; a refusal ({ ok: false, error }) becomes an exception.
function call(event, payload) {
  return new Promise((resolve, reject) => {
    state.socket.timeout(10000).emit(event, payload, (err, ack) => {
      if (err) reject(new Error(`${event}: no answer`));
      else if (ack && ack.ok === false) reject(new Error(ack.error?.message || ack.error?.code));
      else resolve(ack);
    });
  });
}

// -- signing in ----------------------------------------------------------------

async function showPicker() {
  $("picker").hidden = false;
  $("app").hidden = true;
  const { users } = await api("GET", "/demo/api/users");
  state.users = users;
  $("people").replaceChildren(...users.map((u) => h("li", {},
    h("button", { type: "button", class: "person", onclick: () => signIn(u) },
      avatar(u, "big"),
      h("span", { class: "person-name" }, u.name),
      h("span", { class: "person-role" }, ROLE_LABEL[u.role] || u.role)))));
  const wanted = new URLSearchParams(location.search).get("user") || sessionStorage.getItem("demo-user");
  const found = users.find((u) => u.id === wanted);
  if (found) signIn(found);
}

async function fetchToken() {
  const session = await api("POST", "/demo/api/token", { user_id: state.me.id });
  state.token = session.access_token;
  clearTimeout(state.refreshTimer);
  // Refresh at half-life on the live socket (`refresh_token`), as supabase-js does.
  state.refreshTimer = setTimeout(refreshToken, (session.expires_in * 1000) / 2);
}

async function refreshToken() {
  try {
    await fetchToken();
    if (state.socket) {
      state.socket.auth.token = state.token;
      await call("refresh_token", { token: state.token });
    }
  } catch (err) {
    toast(`token refresh failed: ${err.message}`, "error");
  }
}

async function reconnectWithFreshToken() {
  try {
    await fetchToken();
    state.socket.auth.token = state.token;
    state.socket.connect();
  } catch (err) {
    setConnection(`signed out: ${err.message}`, "error");
  }
}

async function signIn(user) {
  state.me = user;
  sessionStorage.setItem("demo-user", user.id);
  history.replaceState(null, "", `?user=${user.id}`);
  document.title = `${user.name} · chat-bridge demo`;
  try {
    await fetchToken();
  } catch (err) {
    $("picker-error").textContent = err.message;
    $("picker-error").hidden = false;
    return;
  }
  $("picker").hidden = true;
  $("app").hidden = false;
  $("me").replaceChildren(avatar(user), h("span", {}, user.name),
    h("button", { type: "button", class: "switch", onclick: switchUser }, "Switch user"));
  connect();
  if (user.role === "brand_owner") setUpNewChat().catch((err) => toast(err.message, "error"));
}

// A brand owner connects with an influencer about one of their campaigns:
// the flow's first step (`start_campaign`), which creates the conversation.
async function setUpNewChat() {
  const { campaigns } = await api("GET", "/demo/api/campaigns");
  const influencers = state.users.filter((u) => u.role === "influencer");
  if (!campaigns.length || !influencers.length) return;
  $("new-campaign").replaceChildren(...campaigns.map((c) => h("option", { value: c.id }, c.title)));
  $("new-influencer").replaceChildren(...influencers.map((u) => h("option", { value: u.id }, u.name)));
  $("new-chat").hidden = false;
  $("new-chat").addEventListener("submit", async (event) => {
    event.preventDefault();
    try {
      const { conversation } = await api("POST", "/demo/api/flow-action", {
        action: "start_campaign", campaign_id: $("new-campaign").value, influencer_id: $("new-influencer").value,
      });
      if (!state.chats.has(conversation.id)) await loadChats();
      await openConversation(conversation.id);
    } catch (err) {
      toast(err.message, "error");
    }
  });
}

function switchUser() {
  state.socket?.disconnect();
  state.socket = null;
  state.open = null;
  sessionStorage.removeItem("demo-user");
  history.replaceState(null, "", location.pathname);
  location.reload();
}

// -- the socket ----------------------------------------------------------------

function setConnection(text, kind) {
  $("connection").textContent = text;
  $("connection").dataset.state = kind;
}

function connect() {
  const socket = io(location.origin, { auth: { token: state.token } });
  state.socket = socket;
  setConnection("connecting…", "connecting");
  socket.on("connect", onConnect);
  socket.on("disconnect", (reason) => {
    setConnection("reconnecting…", "connecting");
    // The bridge hung up (an expired token, a restart): socket.io-client
    // does not come back by itself then.
    if (reason === "io server disconnect") reconnectWithFreshToken();
  });
  socket.on("connect_error", (err) => {
    setConnection(`refused: ${err.message}`, "error");
    if (err.data?.code === "expired_token") reconnectWithFreshToken();
  });
  socket.on("bridge_error", (e) => toast(`${e.event}: ${e.message}`, "error"));
  socket.onAny((_event, payload) => {
    if (payload && typeof payload.event_id === "number") {
      state.lastEventId = Math.max(state.lastEventId, payload.event_id);
    }
  });
  socket.on("conversation_list_updated", onListUpdated);
  socket.on("unread_count_updated", (p) => updateChat(p.conversation_id, { unread_count: p.unread_count }));
  socket.on("new_message", onNewMessage);
  socket.on("typing_status_update", (p) => {
    if (p.is_typing) state.typingIn.add(p.conversation_id);
    else state.typingIn.delete(p.conversation_id);
    renderChats();
  });
  socket.on("user_typing", (p) => {
    if (state.open === p.conversationId && p.userId !== state.me.id) {
      $("typing").textContent = p.isTyping ? `${openChat()?.other_user?.name || "Someone"} is typing…` : "";
    }
  });
  socket.on("user_status_update", (p) => {
    state.statuses.set(p.user_id, p.status);
    renderChats();
    renderHeader();
  });
  socket.on("message_seen", (p) => markRead([p.messageId]));
  socket.on("message_delivered", (p) => markDelivered(p.messageIds, p.timestamp));
  socket.on("message_updated", onMessageChanged);
  socket.on("message_deleted", onMessageChanged);
  socket.on("messages_seen", (p) => markRead(p.messageIds));
  socket.on("conversation_state_changed", (p) => {
    updateChat(p.conversation_id, {
      flow_state: p.flow_state, awaiting_role: p.awaiting_role, chat_status: p.chat_status,
    });
  });
  socket.on("notification", (n) => {
    if (n.conversation_id !== state.open || document.hidden) toast(`${n.title}: ${n.body}`);
  });
}

async function onConnect() {
  setConnection("online", "online");
  try {
    const joined = await call("join", state.me.id);
    for (const id of joined.onlineUsers || []) state.statuses.set(id, "online");
    await call("join_global_updates", state.me.id);
    await call("request_global_notifications", state.me.id);
    await call("user_status", { status: document.hidden ? "away" : "online" });
    let reload = state.lastEventId === 0;
    if (!reload) {
      // Back after a gap: the bridge replays what this tab missed.
      const synced = await call("sync", { lastEventId: state.lastEventId });
      reload = synced.resync;
    }
    if (reload) await loadChats();
    if (state.open) await openConversation(state.open, { rejoin: true, reload });
  } catch (err) {
    toast(err.message, "error");
  }
}

// -- the chat list -------------------------------------------------------------

function openChat() {
  return state.chats.get(state.open);
}

function statusOf(user) {
  if (!user) return "offline";
  return state.statuses.get(user.id) || (user.is_online ? "online" : "offline");
}

async function loadChats() {
  const { conversations } = await api("GET", "/api/conversations");
  state.chats = new Map(conversations.map((c) => [c.id, c]));
  for (const c of conversations) {
    if (c.other_user && !state.statuses.has(c.other_user.id)) {
      state.statuses.set(c.other_user.id, c.other_user.is_online ? "online" : "offline");
    }
  }
  renderChats();
}

function updateChat(id, fields) {
  const chat = state.chats.get(id);
  if (!chat) {
    loadChats();
    return;
  }
  Object.assign(chat, fields);
  renderChats();
  if (id === state.open) renderHeader();
}

function onListUpdated(p) {
  if (p.action === "new_message") {
    updateChat(p.conversation_id, {
      last_message: p.message, unread_count: p.unread_count, last_message_at: p.last_message_at,
      flow_state: p.flow_state, awaiting_role: p.awaiting_role, chat_status: p.chat_status,
    });
  } else if (p.action === "state_changed") {
    updateChat(p.conversation_id, {
      flow_state: p.flow_state, awaiting_role: p.awaiting_role, chat_status: p.chat_status,
    });
  } else if (p.action === "profile_updated" && p.user) {
    for (const chat of state.chats.values()) {
      if (chat.other_user?.id === p.user.id) Object.assign(chat.other_user, p.user);
    }
    renderChats();
  } else {
    loadChats(); // conversation_created and anything new: the list from REST
  }
}

function preview(message) {
  if (!message) return "No messages yet";
  const kind = message.message_type;
  const text = message.deleted_at ? "Message unsent"
    : kind === "image" ? "📷 Image" : kind === "file" ? "📎 File" : message.content;
  return message.sender_id === state.me.id && kind !== "system" ? `You: ${text}` : text;
}

function renderChats() {
  const chats = [...state.chats.values()].sort((a, b) =>
    String(b.last_message?.created_at || b.last_message_at || b.created_at)
      .localeCompare(String(a.last_message?.created_at || a.last_message_at || a.created_at)));
  $("chat-list").replaceChildren(...chats.map((chat) => {
    const other = chat.other_user;
    const online = statusOf(other);
    const typing = state.typingIn.has(chat.id);
    const unread = chat.unread_count || 0;
    const kind = chat.conversation_type === "direct" ? "Direct" : chat.conversation_type === "bid" ? "Bid" : "Campaign";
    return h("li", { class: `chat${chat.id === state.open ? " active" : ""}`, "data-id": chat.id },
      h("button", { type: "button", class: "chat-button", onclick: () => openConversation(chat.id) },
        h("span", { class: "avatar-wrap" }, avatar(other),
          h("span", { class: `dot ${online}`, title: online, "aria-label": online })),
        h("span", { class: "chat-main" },
          h("span", { class: "chat-top" },
            h("span", { class: "chat-name" }, other?.name || "Unknown"),
            h("time", { class: "chat-time" }, clock(chat.last_message?.created_at || chat.last_message_at))),
          h("span", { class: "chat-bottom" },
            h("span", { class: `chat-preview${typing ? " typing-now" : ""}` },
              typing ? "typing…" : preview(chat.last_message)),
            unread > 0 ? h("span", { class: "badge", "aria-label": `${unread} unread` }, String(unread)) : null),
          h("span", { class: "chat-kind" }, kind,
            chat.flow_state ? ` · ${STATE_LABEL[chat.flow_state] || chat.flow_state}` : ""))));
  }));
}

// -- one conversation ----------------------------------------------------------

async function openConversation(id, { rejoin = false, reload = true } = {}) {
  const previous = state.open;
  if (previous && previous !== id) {
    call("leave_conversation", previous).catch(() => {});
  }
  if (previous !== id) {
    state.messages = new Map();
    $("message-list").replaceChildren();
    $("typing").textContent = "";
  }
  state.open = id;
  const chat = openChat();
  $("empty").hidden = true;
  $("open").hidden = false;
  renderChats();
  renderHeader();
  try {
    const joined = await call("join_conversation", id);
    if (joined.partner) state.statuses.set(joined.partner.user_id, joined.partner.status);
    if (chat?.bid_id) await call("join_bid", chat.bid_id);
    if (chat?.campaign_id && chat.conversation_type === "campaign") await call("join_campaign", chat.campaign_id);
    renderHeader();
    if (reload || previous !== id || rejoin) {
      const page = await api("GET", `/api/conversations/${id}/messages?limit=50`);
      if (state.open !== id) return;
      for (const m of page.messages) state.messages.set(m.id, m);
      state.nextCursor = page.has_more ? page.next_cursor : null;
      renderMessages(true);
    }
    markSeen();
  } catch (err) {
    toast(err.message, "error");
  }
  if (previous !== id) $("text").focus();
}

async function loadEarlier() {
  if (!state.nextCursor || !state.open) return;
  const page = await api("GET", `/api/conversations/${state.open}/messages?limit=50&before=${state.nextCursor}`);
  for (const m of page.messages) state.messages.set(m.id, m);
  state.nextCursor = page.has_more ? page.next_cursor : null;
  renderMessages(false);
}

function markSeen() {
  const chat = openChat();
  if (!chat || document.hidden || !(chat.unread_count > 0)) return;
  call("mark_seen", { conversationId: chat.id }).catch((err) => toast(err.message, "error"));
}

function renderHeader() {
  const chat = openChat();
  if (!chat) return;
  const other = chat.other_user;
  $("conv-avatar").replaceChildren(avatar(other));
  $("conv-name").textContent = other?.name || "Unknown";
  const status = statusOf(other);
  $("conv-status").textContent = status;
  $("conv-status").dataset.status = status;
  const closed = chat.chat_status === "closed";
  $("text").disabled = closed;
  $("composer").querySelector("button").disabled = closed;
  $("file").disabled = closed;
  $("text").placeholder = closed ? "This conversation is closed" : "Write a message";
  const flow = chat.conversation_type !== "direct" && chat.flow_state;
  $("flow").hidden = !flow;
  if (!flow) return;
  const waiting = chat.awaiting_role
    ? chat.awaiting_role === state.me.role ? " · waiting for you" : ` · waiting for ${other?.name || "them"}`
    : "";
  $("flow-state").textContent =
    `${chat.conversation_type === "bid" ? "Bid" : "Campaign"}: ${STATE_LABEL[chat.flow_state] || chat.flow_state}${waiting}`;
  const mine = (FLOW[chat.flow_state] || []).filter(([, role]) => role === state.me.role);
  $("flow-actions").replaceChildren(...mine.map(([action, , label]) =>
    h("button", { type: "button", class: `flow-button ${action}`, onclick: () => flowAction(chat.id, action) }, label)));
}

async function flowAction(conversationId, action) {
  try {
    await api("POST", "/demo/api/flow-action", { action, conversation_id: conversationId });
  } catch (err) {
    toast(err.message, "error");
  }
}

function onNewMessage(p) {
  const m = p.message;
  // This tab has the message: a delivery receipt for the sender.
  if (m.sender_id !== state.me.id && !m.delivered_at && !m.deleted_at) {
    call("message_delivered", { messageIds: [m.id] }).catch(() => {});
  }
  if (p.conversation_id !== state.open) return;
  // The echo of our own send replaces its pending copy.
  for (const [key, pending] of state.messages) {
    if (pending.pending && pending.client_message_id && pending.client_message_id === m.client_message_id) {
      state.messages.delete(key);
    }
  }
  state.messages.set(m.id, m);
  renderMessages(true);
  if (m.sender_id !== state.me.id && !document.hidden) {
    call("mark_seen", { messageId: m.id }).catch(() => {});
  }
}

function markDelivered(ids, at) {
  let changed = false;
  for (const id of ids || []) {
    const m = state.messages.get(id);
    if (m && !m.delivered_at) {
      m.delivered_at = at;
      changed = true;
    }
  }
  if (changed) renderMessages(false);
}

// An edit or an unsend: the message as it is now (a tombstone once unsent).
function onMessageChanged(p) {
  if (p.conversation_id === state.open && state.messages.has(p.message_id)) {
    state.messages.set(p.message_id, { ...state.messages.get(p.message_id), ...p.message });
    renderMessages(false);
  }
}

function markRead(ids) {
  let changed = false;
  for (const id of ids || []) {
    const m = state.messages.get(id);
    if (m && !m.is_read) {
      m.is_read = true;
      changed = true;
    }
  }
  if (changed) renderMessages(false);
}

function renderMessages(scroll) {
  const box = $("messages");
  const atBottom = box.scrollHeight - box.scrollTop - box.clientHeight < 40;
  const place = (m) => m.seq ?? Number.MAX_SAFE_INTEGER; // pending sends last
  const list = [...state.messages.values()].sort((a, b) => place(a) - place(b));
  $("message-list").replaceChildren(...list.map((m) => {
    if (m.message_type === "system") {
      return h("li", { class: "msg system", "data-id": m.id }, h("span", { class: "bubble" }, m.content));
    }
    const mine = m.sender_id === state.me.id;
    const receipt = !mine ? null : m.pending ? "Sending…" : m.is_read ? "Read"
      : m.delivered_at ? "Delivered" : "Sent";
    const body = [m.deleted_at ? h("em", { class: "unsent" }, "This message was unsent") : m.content];
    if (!m.deleted_at && (m.media_url || m.uploading)) body.unshift(attachmentOf(m));
    return h("li", { class: `msg ${mine ? "mine" : "theirs"}`, "data-id": m.id },
      h("div", { class: "bubble" }, ...body),
      h("div", { class: "meta" }, clock(m.created_at),
        m.edited_at && !m.deleted_at ? h("span", { class: "edited" }, "edited") : null,
        receipt ? h("span", { class: `receipt ${receipt === "Read" ? "read" : ""}` }, receipt) : null));
  }));
  $("earlier").hidden = !state.nextCursor;
  if (scroll || atBottom) box.scrollTop = box.scrollHeight;
}

// -- attachments ---------------------------------------------------------------
// Events and history carry the storage path; the page asks for a short-lived
// signed URL (`attachment_url`) when it shows the attachment, and keeps it
// until it expires. Images show inline, other files as a download link.

function fileName(path) {
  const last = String(path).split("?")[0].split("/").pop() || "file";
  try { return decodeURIComponent(last); } catch { return last; }
}

function attachmentOf(m) {
  if (m.uploading) return h("span", { class: "attachment-pending" }, `Uploading ${m.uploading}…`);
  const external = /^https?:\/\//.test(m.media_url);
  const el = m.message_type === "image"
    ? h("img", { class: "attachment-image", alt: `Image ${fileName(m.media_url)}`, "data-media": m.id })
    : h("a", { class: "attachment-file", download: fileName(m.media_url), "data-media": m.id,
      target: "_blank", rel: "noopener" }, `📎 ${fileName(m.media_url)}`);
  const known = external ? { url: m.media_url } : state.mediaUrls.get(m.id);
  if (known && (!known.until || known.until > Date.now())) showMedia(el, known.url);
  else if (!m.pending) fetchMediaUrl(m.id);
  return el;
}

function showMedia(el, url) {
  if (el.tagName !== "IMG") {
    el.href = url;
    return;
  }
  // A URL that does not answer (a host elsewhere, offline): a link instead.
  el.addEventListener("error", () => el.replaceWith(
    h("a", { href: url, target: "_blank", rel: "noopener", class: "attachment-file" }, "📷 Image")), { once: true });
  el.src = url;
}

async function fetchMediaUrl(id) {
  const key = `loading-${id}`;
  if (state.mediaUrls.has(key)) return;
  state.mediaUrls.set(key, true);
  try {
    const read = await call("attachment_url", { messageId: id });
    // A little before its end, so an image is never asked for with a stale URL.
    const until = read.expiresAt ? Date.parse(read.expiresAt) - 10000 : 0;
    state.mediaUrls.set(id, { url: read.url, until });
    for (const el of document.querySelectorAll(`[data-media="${id}"]`)) showMedia(el, read.url);
  } catch (err) {
    for (const el of document.querySelectorAll(`[data-media="${id}"]`)) {
      el.replaceWith(h("em", { class: "attachment-pending" }, `attachment unavailable: ${err.message}`));
    }
  } finally {
    state.mediaUrls.delete(key);
  }
}

// The file input: an upload URL from the bridge, the bytes PUT there, then a
// message of type image or file naming the path (the text box's content as
// its caption).
async function attach() {
  const input = $("file");
  const file = input.files?.[0];
  input.value = "";
  if (!file || !state.open) return;
  const conversationId = state.open;
  const caption = $("text").value.trim();
  const clientMessageId = uuid();
  const key = `pending-${clientMessageId}`;
  state.messages.set(key, {
    id: key, pending: true, uploading: file.name, client_message_id: clientMessageId,
    sender_id: state.me.id, content: caption, message_type: "file", created_at: new Date().toISOString(),
  });
  renderMessages(true);
  $("file").closest(".attach").classList.add("busy");
  try {
    const ticket = await call("attachment_upload", {
      conversationId, filename: file.name, contentType: file.type || "application/octet-stream", size: file.size,
    });
    const put = await fetch(ticket.uploadUrl, { method: ticket.method, headers: ticket.headers, body: file });
    if (!put.ok) {
      const refused = await put.json().catch(() => ({}));
      throw new Error(refused.error?.message || refused.message || `upload: ${put.status}`);
    }
    $("text").value = caption && $("text").value.trim() === caption ? "" : $("text").value;
    const ack = await call("send_message", {
      conversationId, message: caption, messageType: ticket.messageType, mediaUrl: ticket.path, clientMessageId,
    });
    if (state.messages.has(key)) {
      state.messages.delete(key);
      if (!state.messages.has(ack.message.id)) state.messages.set(ack.message.id, ack.message);
    }
  } catch (err) {
    state.messages.delete(key);
    toast(`not sent: ${err.message}`, "error");
  } finally {
    $("file").closest(".attach").classList.remove("busy");
    renderMessages(false);
  }
}

// -- writing -------------------------------------------------------------------

async function send(event) {
  event.preventDefault();
  const text = $("text").value.trim();
  if (!text || !state.open) return;
  $("text").value = "";
  stopTyping(false);
  const clientMessageId = uuid();
  const key = `pending-${clientMessageId}`;
  state.messages.set(key, {
    id: key, pending: true, client_message_id: clientMessageId, sender_id: state.me.id,
    content: text, message_type: "text", created_at: new Date().toISOString(),
  });
  renderMessages(true);
  try {
    const ack = await call("send_message", { conversationId: state.open, message: text, clientMessageId });
    if (state.messages.has(key)) {
      state.messages.delete(key);
      if (!state.messages.has(ack.message.id)) state.messages.set(ack.message.id, ack.message);
      renderMessages(true);
    }
  } catch (err) {
    state.messages.delete(key);
    renderMessages(false);
    $("text").value = text;
    toast(`not sent: ${err.message}`, "error");
  }
}

// typing_start when typing begins (again every 3 s while it goes on, the
// bridge lets a silent typist expire), typing_stop after 2.5 s of quiet.
function onInput() {
  if (!state.open || !state.socket?.connected) return;
  const now = Date.now();
  if ($("text").value && now - state.typingSince > 3000) {
    state.typingSince = now;
    state.socket.emit("typing_start", { conversationId: state.open });
  }
  clearTimeout(state.typingTimer);
  state.typingTimer = setTimeout(() => stopTyping(true), 2500);
}

function stopTyping(tell) {
  clearTimeout(state.typingTimer);
  if (state.typingSince && tell && state.open) {
    state.socket?.emit("typing_stop", { conversationId: state.open });
  }
  state.typingSince = 0;
}

document.addEventListener("visibilitychange", () => {
  if (!state.socket?.connected) return;
  // "away" = in the background: the bridge sends pushes again.
  state.socket.emit("user_status", { status: document.hidden ? "away" : "online" });
  if (!document.hidden) markSeen();
});

$("composer").addEventListener("submit", send);
$("file").addEventListener("change", () => attach());
$("text").addEventListener("input", onInput);
$("text").addEventListener("blur", () => stopTyping(true));
$("earlier").addEventListener("click", () => loadEarlier().catch((err) => toast(err.message, "error")));
showPicker().catch((err) => {
  $("picker-error").textContent = `The demo could not load its users: ${err.message}`;
  $("picker-error").hidden = false;
});
