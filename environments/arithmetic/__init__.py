from .env import ArithmeticEnv, boxed_answer, parse_number

__all__ = ["ArithmeticEnv", "boxed_answer", "parse_number"]
