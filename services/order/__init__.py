"""The order service: quotes, orders and their state machine, stock reservations, batch orders."""
