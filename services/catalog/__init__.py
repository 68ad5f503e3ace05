"""The catalog service: scenarios, categories, products and SKUs with prices per member level."""
