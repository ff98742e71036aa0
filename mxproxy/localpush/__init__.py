"""Local stand-ins for Apple's and Google's push services, on 127.0.0.1 only: **demo and test
peers, never a production path.**

* ``apns.LocalAPNs``: APNs' HTTP/2-over-TLS provider API (raw h2 over asyncio);
* ``fcm.LocalFCM``: Google's OAuth2 token endpoint and the FCM HTTP v1 send endpoint;
* ``pki``: the credentials they need (a CA, a 127.0.0.1 server certificate, Apple-style push
  certificates, a .p8 key, a service-account JSON), made with cryptography.

``mxproxy demo`` runs them so a ring shows the push a phone would get; the test suite runs them as
the real local counterparts of the providers (house rule: outside peers get real local servers).
Both answer by a device token's prefix (``bad…`` → BadDeviceToken, …: see each module), so tests
can provoke every provider verdict; any other token is delivered (recorded, and handed to
``on_push`` when set).
"""
