"""`python -m services.support`: run the support service process."""

from services.support.app import create_app
from shared.service import serve

if __name__ == "__main__":
    app = create_app()
    serve(app, app.state.runtime.settings)
