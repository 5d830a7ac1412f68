// The seed's client as the marketplace scenarios (tests/js/market_*.mjs)
// drive it: socket.io-client, one socket per useSocket() call (the seed's
// app opens two per user), rooms joined on every connect without waiting
// for acks, sends emitted without waiting either. Every socket records
// everything it receives (onAny) and every ack it got, in arrival order;
// the script prints it all as JSON for tests/integration/test_js_marketplace.py,
// which counts it and validates each payload against docs/asyncapi.yaml.
import { io } from "socket.io-client";

export const [url, configJson] = process.argv.slice(2);
export const cfg = JSON.parse(configJson);
export const out = { sockets: {}, rest: {}, notes: {} };

const waiters = new Set();
const changed = () => { for (const w of [...waiters]) w(); };

export function finish(code = 0) {
  for (const s of sockets) s.close();
  // Written to a pipe, stdout is asynchronous: exit once all of it is out.
  process.stdout.write(JSON.stringify(out) + "\n", () => process.exit(code));
}

// A bound on the whole scenario, not a timing assertion: it only turns a
// hang into a failure with everything recorded so far.
setTimeout(() => { out.failed = "scenario timed out"; finish(1); }, cfg.deadlineMs ?? 60000);

const sockets = [];

// useSocket(userId) with the token; `name` labels the recording.
export function useSocket(name, userId, token, { joinRooms = true, ...options } = {}) {
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
    if (joinRooms) {
      socket.emit("join", userId);
      socket.emit("join_global_updates", userId);
      socket.emit("request_global_notifications", userId);
    }
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
