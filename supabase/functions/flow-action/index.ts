// Flow actions for bid and campaign conversations, as an edge function.
//
// POST /functions/v1/flow-action  (Authorization: Bearer <user access token>)
//   { "action": "start_bid", "bid_id": "..." }
//   { "action": "start_campaign", "campaign_id": "...", "influencer_id": "..." }
//   { "action": "<flow action>", "conversation_id": "..." }   e.g. accept, confirm, submit_work
//
// Everything is decided by the SQL functions, called as the signed-in user
// (RLS and the turn checks apply); this function only validates the shape of
// the request and maps database errors to HTTP statuses. The bridge then
// announces the change (outbox) and sends the pushes.
// Pinned: the test suite type-checks and runs this exact version (deno check).
import { createClient } from "npm:@supabase/supabase-js@2.119.1";

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const ACTION = /^[a-z_]{1,50}$/;

function reply(status: number, body: unknown): Response {
  return new Response(JSON.stringify(body), {
    status,
    headers: { "Content-Type": "application/json" },
  });
}

function fail(status: number, code: string, message: string): Response {
  return reply(status, { error: { code, message } });
}

// SQLSTATEs raised by the flow functions (supabase/migrations/*_flow.sql),
// and PostgREST's own codes for a token it refuses (bad signature, expired).
const STATUS_BY_SQLSTATE: Record<string, [number, string]> = {
  "PGRST301": [401, "unauthorized"],
  "PGRST303": [401, "unauthorized"],
  "42501": [403, "forbidden"],
  "P0002": [404, "not_found"],
  "22023": [409, "illegal_transition"],
  "23514": [409, "conflict"],
};

Deno.serve(async (req: Request) => {
  if (req.method !== "POST") return fail(405, "method_not_allowed", "use POST");
  const auth = req.headers.get("Authorization");
  if (!auth?.startsWith("Bearer ")) return fail(401, "unauthorized", "missing bearer token");

  let body: Record<string, unknown>;
  try {
    body = await req.json();
  } catch {
    return fail(400, "invalid_json", "body is not JSON");
  }
  if (typeof body !== "object" || body === null) {
    return fail(400, "invalid_body", "body must be an object");
  }
  const action = body.action;
  if (typeof action !== "string" || !ACTION.test(action)) {
    return fail(400, "invalid_action", "action must be a lower_case word");
  }
  const uuidField = (name: string): string | Response => {
    const value = body[name];
    return typeof value === "string" && UUID.test(value)
      ? value
      : fail(400, "invalid_field", `${name} must be a UUID`);
  };

  let rpc: string;
  let args: Record<string, string>;
  if (action === "start_bid") {
    const bid = uuidField("bid_id");
    if (bid instanceof Response) return bid;
    [rpc, args] = ["start_bid_conversation", { p_bid_id: bid }];
  } else if (action === "start_campaign") {
    const campaign = uuidField("campaign_id");
    if (campaign instanceof Response) return campaign;
    const influencer = uuidField("influencer_id");
    if (influencer instanceof Response) return influencer;
    [rpc, args] = [
      "start_campaign_conversation",
      { p_campaign_id: campaign, p_influencer_id: influencer },
    ];
  } else {
    const conversation = uuidField("conversation_id");
    if (conversation instanceof Response) return conversation;
    [rpc, args] = ["apply_flow_action", { p_conversation_id: conversation, p_action: action }];
  }

  const supabase = createClient(
    Deno.env.get("SUPABASE_URL")!,
    Deno.env.get("SUPABASE_ANON_KEY")!,
    { global: { headers: { Authorization: auth } } },
  );
  const { data, error } = await supabase.rpc(rpc, args);
  if (error) {
    const [status, code] = STATUS_BY_SQLSTATE[error.code ?? ""] ?? [500, "internal"];
    return fail(status, code, status === 500 ? "flow action failed" : error.message);
  }
  return reply(200, { conversation: data });
});
