"""`partnerpay demo`: a realistic program with six months of history, built through the services."""

from partnerpay.demo.build import DemoResult, build_demo, check_demo_password

__all__ = ["DemoResult", "build_demo", "check_demo_password"]
