"""EXR sequence writing: half-float frames with correct colour metadata, streamed and atomic."""
