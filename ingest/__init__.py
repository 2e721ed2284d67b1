"""Getting data in: the HTTP gateway, platform webhooks, files and field mappings.

Everything here ends as events on the Kafka topics the stream worker reads (see streams/).
"""
