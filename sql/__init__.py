"""Named, parameterised analysis queries."""
