"""The Grafana boards, one module per board, generated into grafana/dashboards/."""
