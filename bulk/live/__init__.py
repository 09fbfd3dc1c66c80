"""What is live in an account: configuration sets as input cells, and how they differ from an
input row."""
