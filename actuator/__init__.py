"""The actuator: turns the optimizer's Solution into idempotent Deployment patches.

``plan.plan_updates`` decides (pure); ``executor.execute`` applies through a narrow ``KubePort``;
``app`` serves ``POST /update``. Its wire types are :mod:`contract.update`.
"""
