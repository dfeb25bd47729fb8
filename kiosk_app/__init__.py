"""kiosk_app"""
