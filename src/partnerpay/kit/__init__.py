"""Small building blocks shared by every domain: money, clock, ids, errors, state machines."""
