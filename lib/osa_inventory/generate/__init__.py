"""The generator: pure steps from config, skeleton and stored inventory to a new inventory.

No module here reads or writes storage; ``pipeline.generate`` ties the steps together.
"""
