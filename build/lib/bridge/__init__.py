"""chat-bridge: Supabase changes to Socket.IO events and FCM pushes."""
