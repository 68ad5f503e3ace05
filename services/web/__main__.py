"""`python -m services.web`: run the web process (storefront and console pages)."""

from __future__ import annotations

import uvicorn

from services.web.app import create_app
from services.web.settings import WebSettings
from shared.service import uvicorn_options

if __name__ == "__main__":
    settings = WebSettings()
    uvicorn.run(create_app(settings), **uvicorn_options(settings.host, settings.port))
