from django.apps import AppConfig


class PositivityConfig(AppConfig):
    name = "positivity"
    verbose_name = "Daily positivity"
