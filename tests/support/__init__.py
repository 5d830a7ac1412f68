"""What tests and benches share: the demo data (`demo`), starting the daemon
and its clients (`harness`), real services (`services`), pushes (`push`),
and the stand-ins for remote services (`fcm_standin`, `realtime_standin`)."""
