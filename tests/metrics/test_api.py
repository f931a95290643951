def test_monthly_metrics_api(responder_api, db):
    response = responder_api.get("/api/v1/metrics/monthly/?month=2026-03")
    assert response.status_code == 200
    body = response.json()
    assert body["month"] == "2026-03"
    assert set(body["durations"]) == {"ttd", "tta", "ttm", "ttr"}
    assert body["durations"]["ttr"] == {
        "n": 0,
        "missing": 0,
        "median": None,
        "mean": None,
        "p90": None,
        "low_sample": True,
    }


def test_monthly_metrics_api_bad_month_is_400(responder_api, db):
    response = responder_api.get("/api/v1/metrics/monthly/?month=2026-13")
    assert response.status_code == 400
    assert "month" in response.json()["errors"]
    response = responder_api.get("/api/v1/metrics/monthly/?month=2026-03&team=nope")
    assert response.status_code == 400
    assert "team" in response.json()["errors"]


def test_trend_api(responder_api, db):
    response = responder_api.get("/api/v1/metrics/trend/?months=12")
    assert response.status_code == 200
    assert len(response.json()["months"]) == 12
    assert responder_api.get("/api/v1/metrics/trend/?months=0").status_code == 400


def test_dashboard_for_managers_only(client, manager, responder, db):
    client.force_login(responder)
    assert client.get("/admin/metrics/dashboard/").status_code == 403
    client.force_login(manager)
    response = client.get("/admin/metrics/dashboard/?month=2026-03")
    assert response.status_code == 200
    assert b"data:image/png;base64," in response.content
    assert b"Time to resolve" in response.content
