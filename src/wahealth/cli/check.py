"""`wahealth check`: the health of one node, for people and for scripts."""
