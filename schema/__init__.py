"""The wire contract: message.fbs, the code flatc generates from it (wire/), and the codec the rest of
the platform uses (codec.py). See schema/README.md."""
