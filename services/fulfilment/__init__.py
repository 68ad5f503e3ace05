"""The fulfilment service: the encrypted card-key vault, deliveries, direct top-ups with suppliers and
the manual queue.
"""
