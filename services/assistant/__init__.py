"""The assistant service (智能客服): answers buyers' questions in Chinese from the published help
center, announcements and products' service notes (jieba + BM25), and a signed-in buyer's
questions about their own orders from a projection of the order events; hands over to a person
(a ticket) when it is not sure.
"""
