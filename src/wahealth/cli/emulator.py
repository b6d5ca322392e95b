"""`wahealth emulator`: run the Meta emulator standalone."""
