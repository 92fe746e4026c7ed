-- wrk script: POST one small job per request (the API's hot path).
wrk.method = "POST"
wrk.body = '{"payload": "hello from wrk"}'
wrk.headers["Content-Type"] = "application/json"
