"""Friend requests, friendships, blocks and user search."""
