from django.contrib.admin.apps import AdminConfig


class LoyaltyAdminConfig(AdminConfig):
    """Django's admin with the site of `config.admin`: models grouped by task on the home page and in the sidebar."""

    default_site = "config.admin.LoyaltyAdminSite"
