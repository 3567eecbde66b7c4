"""What a destination plugin may import: the hook contract, its values and the shared helpers."""
