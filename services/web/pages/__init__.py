"""Page controllers, one module per context. `CONTROLLERS` is what app.py mounts under the page
router (session middleware, HTML error pages). The console helper adds `console` modules here."""

from __future__ import annotations

from typing import Any

from services.web.pages.account import AccountPages
from services.web.pages.after_sales import AfterSalesPages
from services.web.pages.agents import AgentPages, SitePages
from services.web.pages.assistant import AssistantPages
from services.web.pages.auth import AuthPages
from services.web.pages.batch import BatchPages
from services.web.pages.checkout import CheckoutPages
from services.web.pages.console_agents import ConsoleAgents, ConsoleWithdrawals
from services.web.pages.console_catalog import ConsoleCatalog
from services.web.pages.console_content import ConsoleContent
from services.web.pages.console_dashboard import ConsoleDashboard
from services.web.pages.console_keys import ConsoleKeys
from services.web.pages.console_orders import ConsoleOrders
from services.web.pages.console_partners import ConsolePartners
from services.web.pages.console_queue import ConsoleQueue
from services.web.pages.console_real_name import ConsoleRealName
from services.web.pages.console_tickets import ConsoleTickets
from services.web.pages.console_users import ConsoleUsers
from services.web.pages.console_wallet import ConsoleCoupons, ConsoleTopups
from services.web.pages.content import ContentPages
from services.web.pages.orders import OrderPages
from services.web.pages.storefront import StorefrontPages
from services.web.pages.wallet import WalletPages

CONTROLLERS: list[Any] = [
    AuthPages,
    StorefrontPages,
    CheckoutPages,
    OrderPages,
    AfterSalesPages,
    WalletPages,
    AccountPages,
    ContentPages,
    BatchPages,
    AssistantPages,
    SitePages,
    AgentPages,
    # console (staff and admin)
    ConsoleDashboard,
    ConsoleCatalog,
    ConsoleKeys,
    ConsoleQueue,
    ConsoleTickets,
    ConsoleTopups,
    ConsoleCoupons,
    ConsoleUsers,
    ConsoleRealName,
    ConsoleOrders,
    ConsoleContent,
    ConsolePartners,
    ConsoleAgents,
    ConsoleWithdrawals,
]
