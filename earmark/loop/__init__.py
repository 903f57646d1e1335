"""The active-learning loop: rounds of train -> score -> select -> push -> annotate -> pull,
kept in a run folder whose files are the loop's whole state."""
