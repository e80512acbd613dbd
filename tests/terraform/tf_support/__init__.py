"""Offline reading of the Terraform configuration under terraform/.

python-hcl2 parses the files, and hcl_expr evaluates the expressions it
returns. model plans each environment far enough to show every VM's settings
and labels and the result of every validation and precondition. None of this
needs the google provider.
"""
