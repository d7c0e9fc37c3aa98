"""The command-line front ends: what turns a command line into a run and its outcome into output.
"""
