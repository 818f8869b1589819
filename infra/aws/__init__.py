"""infra/aws"""
