"""`python -m services.wallet`: run the wallet service process."""

from services.wallet.app import create_app
from shared.service import serve

if __name__ == "__main__":
    app = create_app()
    serve(app, app.state.runtime.settings)
