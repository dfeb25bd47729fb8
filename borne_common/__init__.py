"""borne_common: what every Borne process shares, importing nothing else of ours.

Settings base and loader (`settings`), the `--config` option (`cli`), identifier patterns (`ids`),
sd_notify (`systemd`) and the MQTT v5/TLS client factory (`mqtt`).
"""
