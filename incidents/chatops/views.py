"""POST /chatops/slack/commands/: Slack slash commands, verified by Slack's v0 request signature and accepted
once each (a replayed request is refused like a forged one)."""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest, HttpResponseNotAllowed, JsonResponse
from django.views.decorators.csrf import csrf_exempt

from incidents.chatops import commands, services, signing


@csrf_exempt
def slack_commands(request: HttpRequest) -> JsonResponse:
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    body = request.body  # read the raw bytes before the form is parsed: the signature covers them
    try:
        signing.verify(
            secret=settings.SLACK_SIGNING_SECRET,
            timestamp=request.headers.get("X-Slack-Request-Timestamp"),
            signature=request.headers.get("X-Slack-Signature"),
            body=body,
        )
        services.slack_request_accept(signature=request.headers["X-Slack-Signature"])  # once per signature
    except signing.BadSignature as exc:
        return JsonResponse({"error": "invalid_signature", "detail": str(exc)}, status=401)
    if request.POST.get("ssl_check"):  # Slack's periodic certificate check: nothing to do
        return JsonResponse({})
    user_id = request.POST.get("user_id", "")
    if not user_id:
        return JsonResponse({"response_type": "ephemeral", "text": "The request names no Slack user."})
    reply = commands.run_command(slack_user_id=user_id, text=request.POST.get("text", ""))
    return JsonResponse(reply.as_slack())
