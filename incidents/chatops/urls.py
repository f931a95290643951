from django.urls import path

from incidents.chatops import views

urlpatterns = [
    path("slack/commands/", views.slack_commands, name="chatops-slack-commands"),
]
