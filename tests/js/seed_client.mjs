// The seed's client as the scenarios in tests/js (market_*.mjs and the
// smaller ones) drive it: socket.io-client, one socket per useSocket() call (the seed's
// app opens two per user), rooms joined on every connect without waiting
// for acks, sends emitted without waiting either. Every socket records
// everything it receives (onAny) and every ack it got, in arrival order;
// the script prints it all as JSON (with what it adds to `out`) for its test
// (test_js_marketplace.py counts it and validates each payload against
// docs/asyncapi.yaml).
import { io } from "socket.io-client";

export const [url, configJson] = process.argv.slice(2);
export const cfg = JSON.parse(configJson);
export const out = { sockets: {}, rest: {}, notes: {} };

const waiters = new Set();
const changed = () => { for (const w of [...waiters]) w(); };

// Prints `out` and exits; the promise never resolves (await it to stop a
// script there).
export function finish(code = 0) {
  for (const s of sockets) s.close();
  // Written to a pipe, stdout is asynchronous: exit once all of it is out.
  process.stdout.write(JSON.stringify(out) + "\n", () => process.exit(code));
  return new Promise(() => {});
}

// A bound on the whole scenario, not a timing assertion: it only turns a
// hang into a failure with everything recorded so far. A script may set a
// shorter one than cfg.deadlineMs (60 s unless said).
let timer;
export function deadline(ms) {
  clearTimeout(timer);
  timer = setTimeout(() => { out.failed = "scenario timed out"; finish(1); }, ms);
}
deadline(cfg.deadlineMs ?? 60000);

const sockets = [];

const SEED_ROOMS = ["join", "join_global_updates", "request_global_notifications"];

// useSocket(userId) with the token; `name` labels the recording. On every
// connect it joins the seed's three rooms, or the join events listed in
// `joinRooms` (false: none).
export function useSocket(name, userId, token, { joinRooms = true, ...options } = {}) {
  const rooms = joinRooms === true ? SEED_ROOMS : joinRooms || [];
  const record = { user: userId, events: [], acks: [], connectErrors: [], connects: 0 };
  out.sockets[name] = record;
  const socket = io(url, {
    auth: { userId, token },
    transports: ["websocket"],
    reconnectionDelay: 100,
    reconnectionDelayMax: 200,
    ...options,
  });
  sockets.push(socket);
  socket.recording = record;
  socket.onAny((event, payload) => { record.events.push([event, payload]); changed(); });
  socket.on("connect", () => {
    record.connects += 1;
    for (const event of rooms) socket.emit(event, userId);
    changed();
  });
  socket.on("disconnect", changed);
  socket.on("connect_error", (err) => {
    record.connectErrors.push({ message: err.message, data: err.data });
    changed();
  });
  return socket;
}

// Resolves once `predicate()` holds, checked after everything that arrives.
export function until(label, predicate) {
  return new Promise((resolve) => {
    const check = () => {
      const value = predicate();
      if (value) { waiters.delete(check); resolve(value); }
    };
    waiters.add(check);
    out.notes.waitingFor = label;
    check();
  });
}

export const connected = (socket) => until(`${socket.id} connected`, () => socket.connected);

// useSocket, once it is connected.
export async function connect(name, userId, token, options) {
  const socket = useSocket(name, userId, token, options);
  await connected(socket);
  return socket;
}

// An emit whose ack is recorded when it comes, without waiting for it (the
// seed's ChatWindow never waits).
export function fire(socket, event, payload) {
  socket.emit(event, payload, (ack) => { socket.recording.acks.push([event, ack]); changed(); });
}

// An emit whose ack the caller waits for (recorded too).
export async function call(socket, event, payload) {
  const ack = await socket.emitWithAck(event, payload);
  socket.recording.acks.push([event, ack]);
  changed();
  return ack;
}

export const received = (socket, event, where = () => true) =>
  socket.recording.events.filter(([name, data]) => name === event && where(data)).map(([, d]) => d);

export const acksOf = (socket, event) =>
  socket.recording.acks.filter(([name]) => name === event).map(([, ack]) => ack);

// Waits for `count` matching events on each of `sockets`.
export const eachGot = (label, list, event, count, where = () => true) =>
  until(label, () => list.every((s) => received(s, event, where).length >= count));

export async function rest(method, path, token, body) {
  const response = await fetch(url + path, {
    method,
    headers: { Authorization: `Bearer ${token}`, "Content-Type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: response.status, body: await response.json() };
}

// The chat list entry of one conversation, as ChatList.jsx renders it.
export async function chatEntry(token, conversationId) {
  const { status, body } = await rest("GET", "/api/conversations", token);
  if (status !== 200) throw new Error(`chat list: ${status} ${JSON.stringify(body)}`);
  return body.conversations.find((c) => c.id === conversationId);
}

// A round trip on `socket`: every packet the bridge queued for it before
// this ack has arrived by the time it resolves (one socket's packets keep
// their order), so what did not arrive by then was not sent.
export const roundTrip = (socket) =>
  call(socket, "join_global_updates", socket.recording.user);

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// Whether an event's payload is about conversation `cid` (the bridge's
// events name it in snake_case or camelCase).
export const about = (cid) => (d) => (d.conversation_id ?? d.conversationId) === cid;

// What the seed's ChatWindow.sendMessage emits as `send_message`.
export const seedMessage = (conversationId, senderId, receiverId, text) =>
  ({ conversationId, senderId, receiverId, message: text });

// Ava and Leo on two sockets each (the seed's app opens two per user),
// ChatWindow open on conversation `cid` on one device of each; returns once
// every socket has settled.
export async function chatOnTwoDevicesEach(cid) {
  const ava1 = useSocket("ava1", cfg.ava, cfg.avaToken);
  const ava2 = useSocket("ava2", cfg.ava, cfg.avaToken);
  const leo1 = useSocket("leo1", cfg.leo, cfg.leoToken);
  const leo2 = useSocket("leo2", cfg.leo, cfg.leoToken);
  const all = [ava1, ava2, leo1, leo2];
  await Promise.all(all.map(connected));
  ava1.emit("join_conversation", cid);
  leo1.emit("join_conversation", cid);
  await Promise.all(all.map(roundTrip));
  return { ava1, ava2, leo1, leo2, all };
}
