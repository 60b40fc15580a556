"""Member app endpoints of sign-in, profile, ledger and tier, included by config.urls under /api/app/v1/."""

from django.urls import path

from loyalty.apis import app, app_nps

app_patterns = [
    path("auth/token/", app.LoginView.as_view(), name="auth-token"),
    path("auth/logout/", app.LogoutView.as_view(), name="auth-logout"),
    path("me/", app.MeView.as_view(), name="me"),
    path("me/ledger/", app.MeLedgerView.as_view(), name="me-ledger"),
    path("me/tier/", app.MeTierView.as_view(), name="me-tier"),
    path("me/export/", app.MeExportView.as_view(), name="me-export"),
    path("me/nps/", app_nps.MeNpsView.as_view(), name="me-nps"),
]
